"""The command's exit codes, named once; shared by every command module."""

OK = 0
FAILED = 1
CONFIG = 2  # a setting is missing or malformed
UNAVAILABLE = 3  # a service could not be reached or started
DIFFERS = 4  # rebuild: the live tables differ from what the archive implies
# A command called wrongly (unknown option, missing argument). click says 2, which is ours for
# configuration errors; this is sysexits.h's EX_USAGE.
USAGE = 64
