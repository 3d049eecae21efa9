from wedge.cli import main

main()
