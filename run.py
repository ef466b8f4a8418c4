"""`python run.py` does what `crm run` does."""
import sys

from app.cli import main

if __name__ == "__main__":
    main(["run", *sys.argv[1:]])
