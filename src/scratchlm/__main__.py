"""`python -m scratchlm` and `torchrun -m scratchlm` enter the CLI here."""

from scratchlm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
