"""The few-shot generator of FUNIT and COCO-FUNIT, and COCO-FUNIT's content-conditioned style code.

`FewShotGenerator` is `NVlabs/FUNIT:networks.py FewShotGen` and imaginaire's `FUNITTranslator` /
`COCOFUNITTranslator` (research/nvidia.md §1.6-1.8): which encoders, MLP and decoder it holds is
config; how they are wired is here.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn


class FewShotGenerator(nn.Module):
    """content = content_encoder(x); class code = mean over the K shots of class_encoder(shot);
    image = decoder(content, mlp(code)). With `style_conditioning` (COCO-FUNIT) the class code is
    first conditioned on the content it is decoded with.

    Averaging the K codes is the official K-shot inference (`translate_k_shot`, `compute_k_style`);
    the official training uses K = 1, where the mean is the one code.
    """

    def __init__(
        self,
        *,
        content_encoder: nn.Module,
        class_encoder: nn.Module,
        mlp: nn.Module,
        decoder: nn.Module,
        style_conditioning: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.content_encoder = content_encoder
        self.class_encoder = class_encoder
        self.mlp = mlp
        self.decoder = decoder
        self.style_conditioning = style_conditioning

    @classmethod
    def assemble(
        cls,
        *,
        content_encoder: Callable[[], nn.Module],
        class_encoder: Callable[[], nn.Module],
        decoder: Callable[..., nn.Module],
        mlp: Callable[[int, int], nn.Module],
        style_conditioning: Callable[[int, int], nn.Module] | None = None,
    ) -> "FewShotGenerator":
        """Build the parts from factories, wiring the widths: the decoder takes the content width
        (`in_channels=`), the MLP maps the class code to the decoder's AdaIN input, and the style
        conditioning (if any) takes (content width, class code width)."""
        content, classes = content_encoder(), class_encoder()
        image_decoder = decoder(in_channels=content.out_channels)
        return cls(
            content_encoder=content,
            class_encoder=classes,
            mlp=mlp(classes.style_dim, image_decoder.num_adain_params),
            decoder=image_decoder,
            style_conditioning=style_conditioning(content.out_channels, classes.style_dim)
            if style_conditioning
            else None,
        )

    def encode_content(self, x: Tensor) -> Tensor:
        return self.content_encoder(x)

    def class_code(self, shots: Tensor) -> Tensor:
        """The class code of each row of `shots` (B, K, 3, H, W): the mean of its K codes, (B, D)."""
        batch, k = shots.shape[:2]
        return self.class_encoder(shots.flatten(0, 1)).view(batch, k, -1).mean(dim=1)

    def decode(self, content: Tensor, code: Tensor) -> Tensor:
        if self.style_conditioning is not None:
            code = self.style_conditioning(code, content)
        return self.decoder(content, self.mlp(code))

    def forward(self, x: Tensor, shots: Tensor) -> Tensor:
        """Translate each x[i] to the class shown by shots[i] (K images)."""
        return self.decode(self.encode_content(x), self.class_code(shots))


class ContentConditionedStyle(nn.Module):
    """COCO-FUNIT's content-conditioned style code (imaginaire `COCOFUNITTranslator.decode`):

        style_mlp([code, usb]) * content_mlp(GAP(content))

    `usb`, the universal style bias, is a learned (1, usb_dims) constant drawn from N(0, 1) and
    shared by the whole batch. The product lets the content being translated gate the class code,
    the paper's remedy for content loss when the style image's pose differs.
    """

    def __init__(self, *, content_mlp: nn.Module, style_mlp: nn.Module, usb_dims: int) -> None:
        super().__init__()
        self.content_mlp = content_mlp
        self.style_mlp = style_mlp
        self.usb = nn.Parameter(torch.randn(1, usb_dims))

    def forward(self, code: Tensor, content: Tensor) -> Tensor:
        usb = self.usb.expand(len(code), -1)
        return self.style_mlp(torch.cat([code, usb], dim=1)) * self.content_mlp(content.mean(dim=(2, 3)))
