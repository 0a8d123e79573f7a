build-h4/obj/src/base/f16.o: src/base/f16.c src/base/base.h \
 include/qforge.h
src/base/base.h:
include/qforge.h:
