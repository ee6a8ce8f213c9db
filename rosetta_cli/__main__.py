from rosetta_cli.cli.app import main

main()
