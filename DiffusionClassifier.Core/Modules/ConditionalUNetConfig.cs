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
/// <remarks>Thread safety: an immutable record; safe to share.</remarks>
public sealed record ConditionalUNetConfig(int InChannels = 1, int Features = 64, int Classes = 10, int Height = 28, int Width = 28)
{
    /// <summary>The reference MNIST configuration with the given width.</summary>
    /// <param name="features">Base width F.</param>
    public static ConditionalUNetConfig Mnist(int features = 64) => new(1, features, 10, 28, 28);

    /// <summary>
    /// The largest network accepted, in parameter and buffer elements (2^31, 8 GiB of float32; the reference F = 256
    /// MNIST network has about 26.3 million). Larger configurations are refused before anything is allocated.
    /// </summary>
    public const long MaxStateElements = 1L << 31;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> (naming the property and its value) when the
    /// configuration cannot be built, or when the network would exceed <see cref="MaxStateElements"/> (then the
    /// parameter name is <c>config</c> and the message lists every value).</summary>
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
        long? elements = StateElementCount();
        if (elements is null or > MaxStateElements)
            throw new ArgumentOutOfRangeException("config", this, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"The network would need {(elements is long e ? e.ToString("N0") : "more than 2^63")} parameter and buffer elements; at most {MaxStateElements:N0} are accepted."));
    }

    /// <summary>
    /// Elements of all parameters and buffers of the network (its state_dict), from the layer shapes; null when the
    /// count overflows a long. Computed without building the network.
    /// </summary>
    internal long? StateElementCount()
    {
        try
        {
            checked
            {
                long c = InChannels, f = Features, k = Classes, h = Height / 4, w = Width / 4;
                // ResidualConvBlock: two (Conv3x3 with bias, BatchNorm: weight, bias, running mean/var, num_batches_tracked).
                long Block(long i, long o) => 9 * i * o + o + 4 * o + 1 + 9 * o * o + o + 4 * o + 1;
                long Embed(long i, long e) => i * e + e + e * e + e;
                long Up(long i, long o) => i * o * 4 + o + 2 * Block(o, o);
                return Block(c, f) + Block(f, f) + Block(f, 2 * f)
                    + Embed(1, 2 * f) + Embed(1, f) + Embed(k, 2 * f) + Embed(k, f)
                    + 2 * f * 2 * f * h * w + 2 * f + 2 * 2 * f // up0: ConvTranspose2d + GroupNorm
                    + Up(4 * f, f) + Up(2 * f, f)
                    + 9 * 2 * f * f + f + 2 * f + 9 * f * c + c; // out: Conv3x3, GroupNorm, Conv3x3
            }
        }
        catch (OverflowException)
        {
            return null;
        }
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
        // UNetUp(in, out): ConvTranspose2d(in, out, 2, 2) writes 4 output pixels per input pixel.
        double up1 = 2 * (4 * f) * f * hw2 + 2 * (conv3(f, f, hw2) + conv3(f, f, hw2));
        double up2 = 2 * (2 * f) * f * hw + 2 * (conv3(f, f, hw) + conv3(f, f, hw));
        double output = conv3(2 * f, f, hw) + conv3(f, c, hw);
        return embeddings + up1 + up2 + output;
    }
}
