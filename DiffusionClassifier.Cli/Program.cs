namespace DiffusionClassifier.Cli;

/// <summary>Entry point of the <c>diffusion-classifier</c> tool.</summary>
public static class Program
{
    /// <summary>Runs the tool.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <returns>The process exit code.</returns>
    public static int Main(string[] args)
    {
        Console.WriteLine("diffusion-classifier: commands are being built.");
        return 0;
    }
}
