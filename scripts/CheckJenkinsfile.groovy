/*
 * Parses Jenkinsfiles with Groovy (the parser Jenkins uses) without
 * compiling them (their steps and libraries are not on this classpath),
 * then checks the declarative pipeline's shape: known sections, every stage
 * with steps (or nested stages/parallel), known post conditions.
 * Usage: groovy CheckJenkinsfile.groovy FILE...; exit 1 on any problem.
 */
import org.codehaus.groovy.ast.expr.*
import org.codehaus.groovy.ast.stmt.*
import org.codehaus.groovy.control.*

PIPELINE_SECTIONS = ['agent', 'options', 'parameters', 'environment', 'stages', 'post', 'triggers', 'tools', 'libraries'] as Set
STAGE_SECTIONS = ['agent', 'options', 'environment', 'when', 'steps', 'stages', 'parallel', 'post', 'input', 'tools', 'matrix', 'failFast'] as Set
POST_CONDITIONS = ['always', 'success', 'failure', 'unstable', 'aborted', 'changed', 'fixed', 'regression', 'cleanup', 'unsuccessful', 'notBuilt'] as Set

List<MethodCallExpression> callsIn(ClosureExpression c) {
    def code = c.code
    def stmts = code instanceof BlockStatement ? code.statements : [code]
    stmts.findAll { it instanceof ExpressionStatement && it.expression instanceof MethodCallExpression }*.expression
}

ClosureExpression closureOf(MethodCallExpression m) {
    def args = m.arguments
    if (!(args instanceof ArgumentListExpression) || !args.expressions) return null
    def last = args.expressions[-1]
    last instanceof ClosureExpression ? last : null
}

void checkStage(MethodCallExpression stage, List<String> problems) {
    def args = (stage.arguments as ArgumentListExpression).expressions
    def name = args && args[0] instanceof ConstantExpression ? args[0].value : '?'
    def body = closureOf(stage)
    if (stage.methodAsString != 'stage' || !body) { problems << "line ${stage.lineNumber}: expected stage('name') { ... } in stages"; return }
    def sections = callsIn(body)*.methodAsString
    sections.findAll { !(it in STAGE_SECTIONS) }.each { problems << "stage '${name}': unknown section ${it}" }
    if (!sections.any { it in ['steps', 'stages', 'parallel', 'matrix'] }) problems << "stage '${name}' has no steps"
    callsIn(body).findAll { it.methodAsString == 'stages' }.each { inner -> callsIn(closureOf(inner)).each { checkStage(it, problems) } }
    callsIn(body).findAll { it.methodAsString == 'post' }.each { checkPost(it, problems) }
}

void checkPost(MethodCallExpression post, List<String> problems) {
    callsIn(closureOf(post))*.methodAsString.findAll { !(it in POST_CONDITIONS) }.each { problems << "post: unknown condition ${it}" }
}

List<String> check(File file) {
    def problems = []
    def cu = new CompilationUnit()
    def source = cu.addSource(file)
    try {
        cu.compile(Phases.CONVERSION)
    } catch (CompilationFailedException e) {
        return [e.message.readLines().findAll { it.trim() }.take(3).join(' ')]
    }
    def pipelines = source.AST.statementBlock.statements.findAll {
        it instanceof ExpressionStatement && it.expression instanceof MethodCallExpression && it.expression.methodAsString == 'pipeline'
    }*.expression
    if (pipelines.size() != 1) return ["expected one pipeline { } block, found ${pipelines.size()}"]
    def sections = callsIn(closureOf(pipelines[0]))
    sections*.methodAsString.findAll { !(it in PIPELINE_SECTIONS) }.each { problems << "pipeline: unknown section ${it}" }
    ['agent', 'stages'].findAll { !(it in sections*.methodAsString) }.each { problems << "pipeline: no ${it} section" }
    sections.findAll { it.methodAsString == 'stages' }.each { s -> callsIn(closureOf(s)).each { checkStage(it, problems) } }
    sections.findAll { it.methodAsString == 'post' }.each { checkPost(it, problems) }
    problems
}

def failed = false
args.each { path ->
    def problems = check(new File(path))
    if (problems) {
        failed = true
        problems.each { System.err.println("${path}: ${it}") }
    } else {
        println("ok ${path}")
    }
}
System.exit(failed ? 1 : 0)
