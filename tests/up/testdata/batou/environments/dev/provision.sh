COPY seed.txt /srv/s-shop/seed.txt
RUN mkdir -p /srv/s-shop/uploads
ECHO $COMPONENT_HELLO_GREETING /srv/s-shop/greeting
