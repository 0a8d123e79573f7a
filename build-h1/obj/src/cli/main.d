build-h1/obj/src/cli/main.o: src/cli/main.c
