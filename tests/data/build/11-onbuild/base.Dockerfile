FROM busybox
ONBUILD RUN echo triggered > /trig
ONBUILD COPY app.txt /app.txt
LABEL base=yes
