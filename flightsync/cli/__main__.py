"""`python -m flightsync.cli`."""

from flightsync.cli import main

main()
