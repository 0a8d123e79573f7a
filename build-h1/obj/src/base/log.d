build-h1/obj/src/base/log.o: src/base/log.c src/base/base.h \
 include/qforge.h
src/base/base.h:
include/qforge.h:
