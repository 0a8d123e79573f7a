build-lead/obj/src/base/status.o: src/base/status.c src/base/base.h \
 include/qforge.h
src/base/base.h:
include/qforge.h:
