from federated.cli import main

main()
