//! Ordering of stages by their dependencies.

use std::collections::BTreeSet;

/// The nodes reachable from `root` through `deps` (root included), in an
/// order where every node comes after its dependencies; among the nodes
/// that are ready at the same time the lowest index goes first. On a cycle,
/// returns the nodes of one cycle in dependency order.
pub(crate) fn topo_order(deps: &[Vec<usize>], root: usize) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut needed = vec![false; n];
    let mut stack = vec![root];
    while let Some(v) = stack.pop() {
        if v >= n || needed[v] {
            continue;
        }
        needed[v] = true;
        stack.extend(deps[v].iter().copied().filter(|&d| d < n));
    }
    let mut remaining: Vec<usize> = (0..n)
        .map(|v| {
            if needed[v] {
                deps[v]
                    .iter()
                    .filter(|&&d| d < n)
                    .collect::<BTreeSet<_>>()
                    .len()
            } else {
                0
            }
        })
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for v in (0..n).filter(|&v| needed[v]) {
        for d in deps[v]
            .iter()
            .copied()
            .filter(|&d| d < n)
            .collect::<BTreeSet<_>>()
        {
            dependents[d].push(v);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&v| needed[v] && remaining[v] == 0).collect();
    let mut order = Vec::new();
    while let Some(v) = ready.pop_first() {
        order.push(v);
        for &w in &dependents[v] {
            remaining[w] -= 1;
            if remaining[w] == 0 {
                ready.insert(w);
            }
        }
    }
    if order.len() == needed.iter().filter(|&&b| b).count() {
        return Ok(order);
    }
    // Walk unfinished dependencies until a node repeats: that is a cycle.
    let done: BTreeSet<usize> = order.iter().copied().collect();
    let start = (0..n)
        .find(|&v| needed[v] && !done.contains(&v))
        .unwrap_or(root);
    let mut path = vec![start];
    let mut v = start;
    loop {
        let Some(&next) = deps[v].iter().find(|&&d| d < n && !done.contains(&d)) else {
            return Err(path);
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path[pos..].to_vec();
            cycle.reverse();
            return Err(cycle);
        }
        path.push(next);
        v = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_prunes() {
        // 0 <- 1, 0 <- 2, 3 unused, 4 needs 2 and 1.
        let deps = vec![vec![], vec![0], vec![0], vec![], vec![2, 1]];
        assert_eq!(topo_order(&deps, 4), Ok(vec![0, 1, 2, 4]));
        assert_eq!(topo_order(&deps, 2), Ok(vec![0, 2]));
        assert_eq!(topo_order(&deps, 3), Ok(vec![3]));
    }

    #[test]
    fn forward_edges_still_order() {
        let deps = vec![vec![2], vec![0], vec![]];
        assert_eq!(topo_order(&deps, 1), Ok(vec![2, 0, 1]));
    }

    #[test]
    fn reports_cycle() {
        let deps = vec![vec![], vec![2], vec![3], vec![1], vec![1]];
        let cycle = topo_order(&deps, 4).expect_err("cycle");
        let mut sorted = cycle.clone();
        sorted.sort();
        assert_eq!(sorted, vec![1, 2, 3]);
        assert_eq!(topo_order(&[vec![0]], 0), Err(vec![0]));
    }
}
