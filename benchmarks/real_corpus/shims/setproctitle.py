"""A stand-in for the setproctitle package (the process title changes nothing in training)."""


def setproctitle(title):
    pass


def getproctitle():
    return ""
