# Copyright (c) samref contributors. All rights reserved.
import os
import os.path as osp
import re
import shutil
import sys
from typing import List

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def readme() -> str:
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    namespace: dict = {}
    with open(osp.join(HERE, 'samref', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), namespace)
    return namespace['__version__']


def parse_requirements(fname: str) -> List[str]:
    """Requirement specifiers of ``requirements/<fname>``, comments dropped.

    Args:
        fname (str): File name inside ``requirements/``.

    Returns:
        list[str]: One specifier per requirement.
    """
    requirements = []
    with open(osp.join(HERE, 'requirements', fname), encoding='utf-8') as f:
        for line in f:
            line = re.sub(r'#.*', '', line).strip()
            if line:
                requirements.append(line)
    return requirements


# What ``samref/.mim`` holds: the configs (``samref::`` in other projects'
# configs resolves there), the tools and the model index.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def add_mim_extension() -> None:
    """Put :data:`MIM_FILES` into ``samref/.mim``.

    Links to the originals for an editable install (edits show at once),
    copies for a wheel or a source distribution; other commands leave
    ``samref/.mim`` as it is.
    """
    commands = set(sys.argv[1:])
    if commands & {'develop', 'editable_wheel'}:
        link = os.name != 'nt'
    elif commands & {'bdist_wheel', 'sdist', 'build', 'build_py'}:
        link = False
    else:
        return
    mim_dir = osp.join(HERE, 'samref', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        source = osp.join(HERE, name)
        target = osp.join(mim_dir, name)
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        if link:
            os.symlink(osp.relpath(source, mim_dir), target)
        elif osp.isdir(source):
            shutil.copytree(
                source,
                target,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(source, target)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='samref',
        version=get_version(),
        description='SAM-REF: interactive segmentation with Segment Anything '
        'and image-prompt refiners, an OpenMMLab-style toolbox',
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='computer vision, interactive segmentation, segment anything',
        packages=find_packages(exclude=('configs', 'tools', 'demo', 'tests')),
        include_package_data=True,
        python_requires='>=3.9',
        classifiers=[
            'Development Status :: 3 - Alpha',
            'License :: OSI Approved :: Apache Software License',
            'Operating System :: OS Independent',
            'Programming Language :: Python :: 3',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
        ],
        license='Apache License 2.0',
        install_requires=parse_requirements('runtime.txt'),
        extras_require={
            'tests': parse_requirements('tests.txt'),
            'build': parse_requirements('build.txt'),
            'optional': parse_requirements('optional.txt'),
        },
        zip_safe=False)
