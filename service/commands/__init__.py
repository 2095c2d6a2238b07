"""One module per `subtone` subcommand."""
