build-h4/obj/src/base/alloc.o: src/base/alloc.c src/base/base.h \
 include/qforge.h
src/base/base.h:
include/qforge.h:
