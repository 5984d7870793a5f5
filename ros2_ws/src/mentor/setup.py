# placeholder, replaced by the ROS 2 package
from setuptools import setup
setup(name="mentor", version="0.1.0", packages=["mentor"])
