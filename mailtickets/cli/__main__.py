from mailtickets.cli import main

main()
