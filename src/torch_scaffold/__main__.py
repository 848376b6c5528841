from torch_scaffold.cli import main

main()
