import sys

try:
    from devicelab.cli import console
except KeyboardInterrupt:  # Ctrl-C while Python is still importing: leave quietly, as main() would
    sys.exit(130)

console()
