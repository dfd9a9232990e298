"""Candidate segments for BoxSup: region proposals, box-derived masks, and the on-disk store.

Generators (all return masks, not just boxes): ``ss`` (our Selective Search with masks), ``mcg``
(reader of the official pre-computed MCG files), ``mcg-ours`` (our multiscale combinatorial
grouping), ``gop-ours`` (our geodesic object proposals), and per-box ``rect`` / ``grabcut`` /
``crfbox`` masks. ``proposals_for`` returns a ready ``ProposalStore`` (pre-computing what is missing).
"""
from __future__ import annotations

from .boxmasks import box_masks, box_masks_to_label, fallback_mask, grabcut_mask
from .generators import BOX_METHODS, METHODS, PROPOSAL_METHODS, generate, generate_segments
from .quality import best_overlaps, encode_masks, instance_masks, mask_iou_matrix, summarize
from .segments import Segments
from .store import Candidates, ProposalStore, precompute, proposals_for

__all__ = ["BOX_METHODS", "METHODS", "PROPOSAL_METHODS", "Candidates", "ProposalStore", "Segments",
           "best_overlaps", "box_masks", "box_masks_to_label", "encode_masks",
           "fallback_mask", "generate", "generate_segments", "grabcut_mask", "instance_masks", "mask_iou_matrix",
           "precompute", "proposals_for", "summarize"]
