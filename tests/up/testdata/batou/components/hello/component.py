from batou.component import Component


class Hello(Component):
    greeting = "default"
