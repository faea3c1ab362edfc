namespace BitbucketZdu.Simulator.Tests;

// Placeholder until this area's issue lands: proves the project builds and its runner starts.
public class ProjectSmokeTests
{
    [Fact]
    public void Test_project_runs() => Assert.Equal(4, 2 + 2);
}
