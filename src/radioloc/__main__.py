"""``python -m radioloc`` (what torchrun starts): the command line."""

from radioloc.cli import main

main()
