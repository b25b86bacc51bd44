"""``atomic-reactor create-build-image``: an image to build in (methods hostdocker,
privileged), with atomic-reactor installed from wheels made on this host."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "cmd_create_build_image"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "create-build-image", help="make a build image for --method hostdocker/privileged",
        description="Build IMAGE from the Dockerfile in DOCKERFILE_DIR (images/"
                    "dockerhost-builder or images/privileged-builder) with atomic-reactor "
                    "and its dependencies installed from wheels made here with pip.")
    parser.add_argument("dockerfile_dir", metavar="DOCKERFILE_DIR",
                        help="directory with the build image's Dockerfile")
    parser.add_argument("image", metavar="IMAGE", help="name for the build image")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--reactor-local-path", metavar="PATH",
                        help="a checkout of atomic-reactor (default: the one this runs from)")
    source.add_argument("--reactor-tarball-path", metavar="PATH",
                        help="an atomic-reactor sdist (or wheel)")
    source.add_argument("--reactor-remote-git", metavar="URL[@REF]",
                        help="a git repository of atomic-reactor to clone")
    parser.add_argument("--use-cache", action="store_true",
                        help="let the engine reuse cached layers (faster, maybe not up to date)")
    parser.add_argument("--base-image", metavar="IMAGE",
                        help="the image to start from (build argument BASE_IMAGE; the "
                             "Dockerfiles default to debian:bookworm)")


def cmd_create_build_image(args: argparse.Namespace) -> int:
    from atomic_reactor._buildcontainer.image import create_build_image

    built = create_build_image(args.dockerfile_dir, args.image,
                               reactor_local_path=args.reactor_local_path,
                               reactor_tarball_path=args.reactor_tarball_path,
                               reactor_remote_git=args.reactor_remote_git,
                               use_cache=args.use_cache, base_image=args.base_image)
    if not args.quiet:
        print(f"built {built.image} {built.image_id}")
    return 0
