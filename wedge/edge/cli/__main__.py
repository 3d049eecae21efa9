from wedge.edge.cli import main

main()
