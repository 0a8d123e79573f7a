build-h1/obj/src/base/cpu.o: src/base/cpu.c src/base/base.h \
 include/qforge.h
src/base/base.h:
include/qforge.h:
