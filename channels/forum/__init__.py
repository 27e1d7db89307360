"""The city forum (网络问政): feeds polled from its boards, posts pushed by webhook, official replies fed back."""
