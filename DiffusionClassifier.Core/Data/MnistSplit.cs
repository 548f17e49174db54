namespace DiffusionClassifier.Data;

/// <summary>The two halves of MNIST (and of look-alikes such as Fashion-MNIST).</summary>
public enum MnistSplit
{
    /// <summary>The 60,000 training images: <c>train-images-idx3-ubyte</c> and <c>train-labels-idx1-ubyte</c>.</summary>
    Train,

    /// <summary>The 10,000 test images: <c>t10k-images-idx3-ubyte</c> and <c>t10k-labels-idx1-ubyte</c>.</summary>
    Test,
}
