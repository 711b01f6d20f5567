"""`python -m crm_platform` runs the command line."""

from crm_platform.cli import main

if __name__ == "__main__":
    main()
