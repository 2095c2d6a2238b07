"""`python -m subtone.export export|train|eval …`: the model factory without the service's CLI.

The same commands, options and errors as `subtone export …`, for an environment that has the
export tools (the export and train extras, NeMo) but not the live-caption extra, e.g. a separate NeMo venv.
"""

import sys

from subtone.export.commands import main

sys.exit(main())
