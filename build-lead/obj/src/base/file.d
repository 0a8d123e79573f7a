build-lead/obj/src/base/file.o: src/base/file.c src/base/base.h \
 include/qforge.h
src/base/base.h:
include/qforge.h:
