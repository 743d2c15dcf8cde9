"""The apps Bastion is compared with: the bare ceiling, the blog post, fastapi-users."""
