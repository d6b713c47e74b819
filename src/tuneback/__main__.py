from tuneback.cli import main

main()
