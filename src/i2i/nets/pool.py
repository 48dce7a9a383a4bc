"""The image history buffer of Shrivastava et al. (2017) used by CycleGAN's discriminators."""

import torch
from torch import Tensor, nn


class ImagePool(nn.Module):
    """Keeps up to `size` previously generated images; D sees a mix of new and old fakes.

    Once full, each incoming image is returned as is with probability 1/2, otherwise it replaces a
    random stored image and the stored one is returned (`util/image_pool.py` of the official code).
    The buffer is a registered buffer, so it is saved in checkpoints and a resumed run continues
    exactly. Random draws use torch's generator, which the training spine checkpoints.
    """

    #: under DDP each rank keeps the history of its own fakes (one pool per process, as the official
    #: torchrun code); the spine lists this buffer in DDP's `_ddp_params_and_buffers_to_ignore`
    rank_local = True

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.empty(0), persistent=True)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # The buffer grows as images arrive; take the saved shape before loading into it.
        key = prefix + "images"
        if key in state_dict:
            self.images = torch.empty_like(state_dict[key], device=self.images.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images = torch.cat([self.images.to(image), image]) if len(self.images) else image.clone()
                out.append(image)
            elif torch.rand(()) < 0.5:
                slot = int(torch.randint(0, self.size, ()))
                out.append(self.images[slot : slot + 1].clone())
                self.images[slot] = image[0]
            else:
                out.append(image)
        return torch.cat(out)
