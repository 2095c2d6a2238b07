"""The `subtone` command line: `main` builds the one argparse tree, one module per runtime command."""
