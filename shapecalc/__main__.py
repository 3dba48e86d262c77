"""``python -m shapecalc`` runs the command line."""

from shapecalc.cli import main

if __name__ == "__main__":
    main()
