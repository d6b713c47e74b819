"""Use-cases that combine the domain, the store and the models: chat, feedback, analytics."""
