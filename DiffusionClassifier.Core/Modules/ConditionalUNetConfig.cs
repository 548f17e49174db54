namespace DiffusionClassifier.Modules;

/// <summary>
/// The architecture of a <see cref="ConditionalUNet"/>: everything needed to rebuild the network before loading
/// its weights.
/// </summary>
/// <param name="InChannels">Image channels (reference <c>in_channels</c>); 1 for MNIST.</param>
/// <param name="Features">Base width F (reference <c>n_feat</c>); must be a positive multiple of 8 because of
/// GroupNorm(8, F).</param>
/// <param name="Classes">Number of labels (reference <c>n_classes</c>).</param>
/// <param name="Height">Image height; a positive multiple of 4.</param>
/// <param name="Width">Image width; a positive multiple of 4.</param>
public sealed record ConditionalUNetConfig(int InChannels = 1, int Features = 64, int Classes = 10, int Height = 28, int Width = 28)
{
    /// <summary>The reference MNIST configuration with the given width.</summary>
    /// <param name="features">Base width F.</param>
    public static ConditionalUNetConfig Mnist(int features = 64) => new(1, features, 10, 28, 28);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> (naming the property and its value) when the
    /// configuration cannot be built.</summary>
    public void Validate()
    {
        if (InChannels < 1)
            throw new ArgumentOutOfRangeException(nameof(InChannels), InChannels, "InChannels must be at least 1.");
        if (Features < 8 || Features % 8 != 0)
            throw new ArgumentOutOfRangeException(nameof(Features), Features, "Features must be a positive multiple of 8 (GroupNorm uses 8 groups).");
        if (Classes < 1)
            throw new ArgumentOutOfRangeException(nameof(Classes), Classes, "Classes must be at least 1.");
        if (Height < 4 || Height % 4 != 0)
            throw new ArgumentOutOfRangeException(nameof(Height), Height, "Height must be a positive multiple of 4 (two 2x poolings).");
        if (Width < 4 || Width % 4 != 0)
            throw new ArgumentOutOfRangeException(nameof(Width), Width, "Width must be a positive multiple of 4 (two 2x poolings).");
    }

    /// <summary>
    /// Multiply-accumulate operations of one forward pass for one image, counted from the layer shapes, times two
    /// (so the result is in FLOPs). Convolutions, transposed convolutions and linear layers only.
    /// </summary>
    public double ForwardFlops() => TrunkFlops() + HeadFlops();

    /// <summary>FLOPs of the label-independent trunk (<c>init_conv</c> through <c>up0</c>) for one image.</summary>
    public double TrunkFlops()
    {
        double f = Features, c = InChannels, hw = (double)Height * Width, hw2 = hw / 4, hw4 = hw / 16;
        double conv3(double cin, double cout, double pixels) => 2 * 9 * cin * cout * pixels;
        double initConv = conv3(c, f, hw) + conv3(f, f, hw);
        double down1 = conv3(f, f, hw) + conv3(f, f, hw);
        double down2 = conv3(f, 2 * f, hw2) + conv3(2 * f, 2 * f, hw2);
        // ConvTranspose2d(2F, 2F, k=H/4, stride=H/4) from 1x1: each output pixel gets 2F*2F MACs.
        double up0 = 2 * (2 * f) * (2 * f) * hw4;
        return initConv + down1 + down2 + up0;
    }

    /// <summary>FLOPs of the label-dependent head (embeddings, <c>up1</c>, <c>up2</c>, <c>out</c>) for one image.</summary>
    public double HeadFlops()
    {
        double f = Features, c = InChannels, k = Classes, hw = (double)Height * Width, hw2 = hw / 4;
        double conv3(double cin, double cout, double pixels) => 2 * 9 * cin * cout * pixels;
        double embed(double input, double emb) => 2 * (input * emb + emb * emb);
        double embeddings = embed(1, 2 * f) + embed(1, f) + embed(k, 2 * f) + embed(k, f);
        // UnetUp(in, out): ConvTranspose2d(in, out, 2, 2) writes 4 output pixels per input pixel.
        double up1 = 2 * (4 * f) * f * hw2 + 2 * (conv3(f, f, hw2) + conv3(f, f, hw2));
        double up2 = 2 * (2 * f) * f * hw + 2 * (conv3(f, f, hw) + conv3(f, f, hw));
        double output = conv3(2 * f, f, hw) + conv3(f, c, hw);
        return embeddings + up1 + up2 + output;
    }
}
