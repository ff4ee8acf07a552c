from gptbench.cli import main

main()
