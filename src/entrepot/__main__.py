from entrepot.cli.app import main

main()
