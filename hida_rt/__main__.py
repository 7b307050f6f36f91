"""`python -m hida_rt COMMAND ...`: the hida-rt command where the scripts folder is not on PATH."""
from .commands import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m hida_rt"))
