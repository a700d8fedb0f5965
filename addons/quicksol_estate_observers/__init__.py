# One import a line (easier diffs and merges), so isort is told to leave the file alone.
# isort: skip_file
from . import models
from . import wizard
