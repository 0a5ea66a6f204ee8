"""``python -m backbone.deploy serve ...``: the service without PyTorch (``backbone.deploy.serving``)."""

import sys

from backbone.deploy.serving import main

sys.exit(main())
