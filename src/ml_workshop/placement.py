"""Where a student's server runs in cluster mode: a node and its NPU ids (issue 14).

One hub, several NPU servers ("nodes", Docker Swarm workers). Pure: the spawner feeds in what
the nodes are (their NPU ids, whether they take new servers, which images they have), which
servers run where, and where each student's work lives; it starts the server where `place()`
says and records the result. Per node, the NPU choice is `alloc.allocate_npus` (the per-server
mode's code, unchanged).

The rules, the same for every policy:
- A running server stays where it is (a second start of a running server changes nothing).
- A student's work lives on one node (their *home*: where they ran last). Unless the work
  directory is shared between the nodes (`work_shared`, an NFS path the operator provides), the
  student is placed only there: a full, drained or missing home node is a refusal that names the
  node, and moving the student is an explicit admin action that copies the work first and
  changes the home (never a silent start elsewhere with an empty ~/work).
- A student without a home (first start), or with shared work, goes where the policy says among
  the nodes that take new servers and have the image:
    exclusive  the home if it has `per_user` free NPUs, else the node with the most free NPUs
               (ties: the node listed first);
    shared     the home, else the node running the fewest servers (ties: more NPUs, then first);
    static     the node and ids of the student's entry in the static map; a student without an
               entry runs without NPUs where `shared` would put them.
Refusals are `alloc.AllocationError`s with a reason of `messages` and its parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import alloc, messages

# Swarm's node availability (docker node inspect .Spec.Availability) and state (.Status.State):
# only an active node that is ready takes new servers.
AVAILABILITIES = ("active", "pause", "drain")


@dataclass(frozen=True)
class Node:
    """One NPU server of the cluster as the hub sees it now."""

    name: str
    npu_ids: tuple[int, ...] = ()
    availability: str = "active"  # active | pause | drain (Swarm)
    ready: bool = True  # Swarm node state "ready" (not down / unknown)
    images: frozenset[str] | None = None  # image references present; None: not known (no check)

    @property
    def takes_new_servers(self) -> bool:
        return self.ready and self.availability == "active"

    @property
    def state(self) -> str:
        """In words, for a refusal: "down", "drain", "pause" or "active"."""
        return self.availability if self.ready else "down"

    def has_image(self, image: str) -> bool:
        return self.images is None or image in self.images


@dataclass(frozen=True)
class Running:
    """A server that runs now: on which node, with which NPU ids."""

    node: str
    npus: tuple[int, ...] = ()


@dataclass(frozen=True)
class Placement:
    node: str
    npus: list[int] = field(default_factory=list)
    moved: bool = False  # placed away from the student's home (shared work only)


def _node_table(nodes: Iterable[Node]) -> dict[str, Node]:
    table: dict[str, Node] = {}
    for node in nodes:
        if node.name in table:
            raise ValueError(f"node {node.name!r} listed twice")
        table[node.name] = node
    return table


def holders_on(node: str, running: Mapping[str, Running], except_user: str = "") -> dict[str, list[int]]:
    """{user: [ids]} of the servers on `node` (the per-server allocator's `current`)."""
    return {u: list(r.npus) for u, r in running.items() if r.node == node and u != except_user}


def free_npus(node: Node, running: Mapping[str, Running], except_user: str = "") -> list[int]:
    used = {i for ids in holders_on(node.name, running, except_user).values() for i in ids}
    return [i for i in sorted(set(node.npu_ids)) if i not in used]


def servers_on(node: str, running: Mapping[str, Running], except_user: str = "") -> int:
    return sum(1 for u, r in running.items() if r.node == node and u != except_user)


def _static_entry(static_map: Mapping[str, Any], username: str) -> tuple[str, list[int]] | None:
    entry = static_map.get(username)
    if entry is None:
        return None
    return str(entry["node"]), sorted({int(i) for i in entry.get("npus", [])})


def place(
    policy: str,
    username: str,
    nodes: Sequence[Node],
    running: Mapping[str, Running],
    homes: Mapping[str, str],
    per_user: int = 1,
    static_map: Mapping[str, Any] | None = None,
    image: str = "",
    work_shared: bool = False,
) -> Placement:
    """The node and NPU ids for `username`'s server (see the module's rules).

    nodes: every node of the cluster, in the operator's order; running: {user: Running} of the
    servers that run now (the caller dropped the stopped ones); homes: {user: node} where each
    student's work lives; static_map: {user: {"node": name, "npus": [ids]}} (policy static).
    """
    if policy not in alloc.POLICIES:
        raise alloc.AllocationError(f"unknown NPU policy {policy!r}")
    table = _node_table(nodes)
    if username in running and running[username].node in table:
        now = running[username]
        return Placement(now.node, sorted(now.npus))

    home = homes.get(username)
    if home is not None and not work_shared:
        return _place_on_home(policy, username, table, home, running, per_user, static_map or {}, image)

    candidates = [n for n in table.values() if n.takes_new_servers]
    if not candidates:
        raise alloc.AllocationError(
            f"No server of the cluster takes new servers now ({len(table)} nodes: "
            f"{', '.join(f'{n.name} {n.state}' for n in table.values()) or 'none'}).",
            messages.NO_NODE,
            nodes=len(table),
        )
    with_image = [n for n in candidates if not image or n.has_image(image)]
    if not with_image:
        raise alloc.AllocationError(
            f"The image {image} is on none of the nodes that take new servers "
            f"({', '.join(n.name for n in candidates)}).",
            messages.IMAGE_MISSING_ON_NODE,
            image=image,
            node=", ".join(n.name for n in candidates),
        )
    moved = home is not None and home in table

    if policy == "static":
        entry = _static_entry(static_map or {}, username)
        if entry is not None:
            node_name, ids = entry
            node = table.get(node_name)
            if node is None or not node.takes_new_servers:
                raise _unavailable(node_name, node)
            if image and not node.has_image(image):
                raise _image_missing(node, image)
            return Placement(
                node.name, sorted(set(ids) & set(node.npu_ids)), moved=node.name != home and moved
            )

    if policy == "exclusive":
        n_free = {n.name: len(free_npus(n, running, username)) for n in with_image}  # once per node
        if home is not None and home in n_free and n_free[home] >= per_user:
            h = table[home]
            return Placement(h.name, _exclusive_on(h, username, running, per_user))
        best = max(with_image, key=lambda n: n_free[n.name])  # first of ties
        if n_free[best.name] < per_user:
            total = sum(len(set(n.npu_ids)) for n in with_image)
            free = sum(n_free.values())
            raise alloc.AllocationError(
                f"No free NPU on any of the {len(with_image)} servers of the cluster: {total} NPUs, "
                f"{free} free, but no server has {per_user} free at once.",
                messages.NPU_FULL_CLUSTER,
                nodes=len(with_image),
                total=total,
                needed=per_user,
                free=free,
            )
        return Placement(
            best.name, _exclusive_on(best, username, running, per_user), moved=moved and best.name != home
        )

    # shared, or static without an entry (no NPUs)
    if home is not None and home in table and table[home] in with_image:
        target = table[home]
    else:
        target = min(with_image, key=lambda n: (servers_on(n.name, running, username), -len(set(n.npu_ids))))
    npus = sorted(set(target.npu_ids)) if policy == "shared" else []
    return Placement(target.name, npus, moved=moved and target.name != home)


def _exclusive_on(node: Node, username: str, running: Mapping[str, Running], per_user: int) -> list[int]:
    return alloc.allocate_npus(
        "exclusive", node.npu_ids, username, holders_on(node.name, running, username), per_user=per_user
    )


def _unavailable(name: str, node: Node | None) -> alloc.AllocationError:
    state = "gone" if node is None else node.state
    return alloc.AllocationError(
        f"Node {name} does not take new servers now ({state}).",
        messages.HOME_NODE_UNAVAILABLE,
        node=name,
    )


def _image_missing(node: Node, image: str) -> alloc.AllocationError:
    return alloc.AllocationError(
        f"The image {image} is not on node {node.name}.",
        messages.IMAGE_MISSING_ON_NODE,
        image=image,
        node=node.name,
    )


def _place_on_home(
    policy: str,
    username: str,
    table: Mapping[str, Node],
    home: str,
    running: Mapping[str, Running],
    per_user: int,
    static_map: Mapping[str, Any],
    image: str,
) -> Placement:
    """The student's work is on `home` and nowhere else: there, or a refusal naming it."""
    node = table.get(home)
    if node is None or not node.takes_new_servers:
        raise _unavailable(home, node)
    if image and not node.has_image(image):
        raise _image_missing(node, image)
    if policy == "shared":
        return Placement(node.name, sorted(set(node.npu_ids)))
    if policy == "static":
        entry = _static_entry(static_map, username)
        if entry is None:
            return Placement(node.name, [])
        node_name, ids = entry
        if node_name != home:
            raise alloc.AllocationError(
                f"The static map puts {username} on {node_name}, but their work is on {home}: "
                "move the work first (the move changes the home).",
                messages.HOME_NODE_UNAVAILABLE,
                node=home,
            )
        return Placement(node.name, sorted(set(ids) & set(node.npu_ids)))
    free = free_npus(node, running, username)
    if len(free) < per_user:
        raise alloc.AllocationError(
            f"Node {home}, where {username}'s work is, has {len(free)} free NPUs ({per_user} needed).",
            messages.HOME_NODE_FULL,
            node=home,
            needed=per_user,
            free=len(free),
        )
    return Placement(node.name, _exclusive_on(node, username, running, per_user))


def validate_cluster_settings(
    nodes: Sequence[Node], policy: str, per_user: Any = 1, static_map: Mapping[str, Any] | None = None
) -> list[str]:
    """Errors (empty when usable), each naming the variable, for the hub's preflight in cluster
    mode: the policy, every node's NPU ids as `alloc.validate_npu_settings` checks them, unique
    node names, `per_user` NPUs on at least one node, and static entries that name a node of the
    cluster and ids that node has."""
    errors: list[str] = []
    if policy not in alloc.POLICIES:
        errors.append(f"hub_npu_policy must be one of {', '.join(alloc.POLICIES)}, not {policy!r}")
    seen: set[str] = set()
    for node in nodes:
        if node.name in seen:
            errors.append(f"node {node.name!r} is listed twice")
        seen.add(node.name)
        if node.availability not in AVAILABILITIES:
            errors.append(f"node {node.name}: availability must be one of {', '.join(AVAILABILITIES)}")
        errors.extend(f"node {node.name}: {e}" for e in alloc.validate_npu_settings(node.npu_ids, "shared"))
    per_user = alloc._as_int(per_user)
    if policy == "exclusive":
        if not isinstance(per_user, int) or isinstance(per_user, bool) or per_user < 1:
            errors.append(f"hub_npu_per_user must be an integer >= 1, not {per_user!r}")
        elif nodes and all(len(set(n.npu_ids)) < per_user for n in nodes):
            errors.append(f"hub_npu_per_user ({per_user}) is larger than the number of NPUs of every node")
    if policy == "static":
        table = {n.name: n for n in nodes}
        for user, entry in (static_map or {}).items():
            if not isinstance(entry, Mapping) or "node" not in entry:
                errors.append(
                    f"hub_npu_static_map[{user!r}] must be {{node: NAME, npus: [ids]}} in cluster mode"
                )
                continue
            node = table.get(str(entry["node"]))
            if node is None:
                errors.append(
                    f"hub_npu_static_map[{user!r}] names node {entry['node']!r}, which is not in the cluster"
                )
                continue
            ids = [alloc._as_int(i) for i in entry.get("npus", [])]
            unknown = sorted({i for i in ids if i not in node.npu_ids}, key=str)
            if unknown:
                errors.append(
                    f"hub_npu_static_map[{user!r}] gives NPU ids {unknown} that node {node.name} does not have"
                )
    return errors
