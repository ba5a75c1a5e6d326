def softmax(x):
    raise NotImplementedError


def log_softmax(x):
    raise NotImplementedError
