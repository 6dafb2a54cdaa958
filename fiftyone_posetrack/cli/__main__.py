import sys

from fiftyone_posetrack.cli import main

sys.exit(main())
