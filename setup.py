# Copyright (c) samref contributors. All rights reserved.
import os.path as osp
import re
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


if __name__ == '__main__':
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
        python_requires='>=3.8',
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
        },
        zip_safe=False)
