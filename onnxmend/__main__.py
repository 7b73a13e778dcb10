from onnxmend.cli import main

main()
