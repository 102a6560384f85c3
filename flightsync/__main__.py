"""`python -m flightsync`."""

from flightsync.cli import main

main()
